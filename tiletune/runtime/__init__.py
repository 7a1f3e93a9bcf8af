"""The runtime: call compiled kernels on NumPy arrays, time them, save and load them.

It never imports the compiler or a backend: a saved kernel loads and runs without them.
"""
from tiletune.runtime.code import LoadedCode, PythonCode, SharedLibraryCode
from tiletune.runtime.info import ArgSpec, KernelInfo
from tiletune.runtime.load import load_module
from tiletune.runtime.module import Module
from tiletune.runtime.timing import TimingResult

__all__ = ["ArgSpec", "KernelInfo", "LoadedCode", "Module", "PythonCode", "SharedLibraryCode",
           "TimingResult", "load_module"]
