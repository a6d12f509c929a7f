//! The `watchsim` binary; everything is in the library's [`watchsim::cli`].

fn main() -> std::process::ExitCode {
    watchsim::cli::main()
}
