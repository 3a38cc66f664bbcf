// `tree-sitter generate` alone: the generator of tree-sitter-cli 0.20.7 (its src/generate,
// copied in by ../build-generator.sh from Debian's source package), without the rest of the CLI.
mod generate;

pub const LANGUAGE_VERSION: usize = 14;
pub const PARSER_HEADER: &str = include_str!("parser.h");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()) {
        Some("--version") => println!("tree-sitter 0.20.7 (generate only)"),
        Some("generate") => {
            let dir = std::env::current_dir().expect("no current directory");
            let grammar = args.get(2).map(|s| s.as_str());
            if let Err(e) =
                generate::generate_parser_in_directory(&dir, grammar, LANGUAGE_VERSION, false, None)
            {
                eprintln!("{:?}", e);
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: tree-sitter generate [GRAMMAR]");
            std::process::exit(2);
        }
    }
}
