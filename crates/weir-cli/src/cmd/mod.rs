//! One module per subcommand.
pub mod anon;
pub mod collect;
pub mod decode;
pub mod demo;
pub mod expire;
pub mod gen_cmd;
pub mod graph;
pub mod import;
pub mod input;
pub mod inspect;
pub mod pcap;
pub mod profile;
pub mod query;
pub mod replay;
pub mod sflow2pcap;
