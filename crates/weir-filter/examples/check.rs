//! Parses each argument as a filter and prints its tree or the error, like
//! `nfdump -Z`: `cargo run -p weir-filter --example check -- 'port 80'`.
#![allow(clippy::print_stdout)]

fn main() {
    for t in std::env::args().skip(1) {
        match weir_filter::Filter::parse(&t) {
            Ok(f) => println!("{t:?}\n  reads {:?}\n  {:#?}", f.fields(), f.expr()),
            Err(e) => println!("{}\n", e.pretty),
        }
    }
}
