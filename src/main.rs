//! The `tallyd` binary: everything lives in the library; see `tallyd --help`.

fn main() -> std::process::ExitCode {
    tallyd::cli::main()
}
