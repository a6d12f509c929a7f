//! The `watchsim` binary; everything is in the library's [`watchsim::cli`].

/// mimalloc, with the defaults [`watchsim::allocator::configure`] sets (issue 16).
#[global_allocator]
static ALLOCATOR: watchsim::allocator::Allocator = watchsim::allocator::Allocator {};

fn main() -> std::process::ExitCode {
    watchsim::allocator::configure();
    watchsim::cli::main()
}
