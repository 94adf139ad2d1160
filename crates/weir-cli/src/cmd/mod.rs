//! One module per subcommand.
pub mod demo;
pub mod gen_cmd;
pub mod inspect;
