//! The `watchsim` binary; everything is in the library's [`watchsim::cli`].

/// The system allocator; a lone run also has large fresh blocks faulted in on its spare core
/// (`kernel/prefault.rs`).
#[global_allocator]
static ALLOC: watchsim::kernel::prefault::PrefaultingAlloc =
    watchsim::kernel::prefault::PrefaultingAlloc;

fn main() -> std::process::ExitCode {
    watchsim::cli::main()
}
