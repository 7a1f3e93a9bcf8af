"""Code generators: ``llvm`` (CPU via llvmlite) and ``vta`` (the accelerator simulator).

Each backend turns a lowered PrimFunc into a ``tiletune.runtime.Module``; backends import the
runtime and ``ir``, never each other nor the compiler.
"""
