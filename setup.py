from setuptools import find_packages, setup

setup(
    name="tiletune",
    version="0.1.0",
    description="A TVM-style tensor compiler with an autotuner (LLVM and a VTA-like accelerator)",
    packages=find_packages(include=["tiletune", "tiletune.*"]),
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "llvmlite>=0.50", "scikit-learn>=1.3",
                      "xgboost-cpu>=2.0", "networkx>=3.0", "rich>=13", "onnx>=1.15"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "pytest-timeout>=2", "ruff>=0.5", "onnx>=1.15",
                 "onnxruntime>=1.17"],
        "bench": ["torch==2.13.0", "torchvision==0.28.0", "onnxruntime>=1.17", "onnx>=1.15"],
    },
    entry_points={"console_scripts": ["tiletune=tiletune.cli:main"]},
)
