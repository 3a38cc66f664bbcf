"""Package layout (metadata is in pyproject.toml).

The top-level folders grammar/, schemas/ and stdlib_cells/ ship inside the
package as rattan.grammar, rattan.schemas and rattan.stdlib_cells. Every
folder under stdlib_cells/ (one per built-in cell) is listed as a data package
here, so a new cell folder ships without editing any configuration.
"""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_ROOTS = {"rattan.grammar": "grammar", "rattan.schemas": "schemas", "rattan.stdlib_cells": "stdlib_cells"}

packages = ["rattan"] + [
    "rattan." + d for d in sorted(os.listdir(os.path.join(HERE, "rattan")))
    if os.path.isfile(os.path.join(HERE, "rattan", d, "__init__.py"))
]
package_dir = dict(DATA_ROOTS)
package_data = {"rattan.grammar": ["*.lark"], "rattan.schemas": ["*.json"], "rattan.stdlib_cells": ["*.md"]}
for d in sorted(os.listdir(os.path.join(HERE, "stdlib_cells"))):
    if os.path.isdir(os.path.join(HERE, "stdlib_cells", d)) and not d.startswith(("_", ".")):
        name = f"rattan.stdlib_cells.{d}"
        packages.append(name)
        package_dir[name] = f"stdlib_cells/{d}"
        package_data[name] = ["*.json", "*.md", "*.c", "*.h"]
packages += list(DATA_ROOTS)

package_data["rattan.engine"] = ["csrc/*.c", "csrc/*.h"]

# The C engine is compiled by cffi (API mode) at install time.
setup(packages=packages, package_dir=package_dir, package_data=package_data,
      cffi_modules=["rattan/engine/build.py:ffibuilder"])
