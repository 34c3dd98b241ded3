"""hal's llvm-cpu target backend and the loader of its object-code executables."""
