#!/usr/bin/env python3
"""Every library CMakeLists.txt finds is installed by every build recipe (CTest deploy.build_deps).

  build_deps_test.py SOURCE_DIR

The same build dependencies are written in four places: CMakeLists.txt (find_package,
pkg_check_modules), .ci/install-deps (make test, make run), the container image's build and
runtime stages (deploy/container/Dockerfile) and the package's Build-Depends
(deploy/debian/control). A library added to CMakeLists.txt but not to the others breaks only
`make test-deploy` or `make test-deb`, long after the fact; this test says so in seconds.
Exits 1 and names every gap.
"""
import re
import sys

source = sys.argv[1]
problems = []

# What CMakeLists.txt names -> (Debian -dev package to build, runtime package of the image).
# A library CMakeLists.txt finds that is not in this table is itself a failure: add it here and
# to every recipe below. None: nothing to install at run time (header-only, part of libc6).
KNOWN = {
    "PkgConfig": ("pkg-config", None),
    "libpistache": ("libpistache-dev", "libpistache0"),
    "libidn2": ("libidn2-dev", "libidn2-0"),
    "libcares": ("libc-ares-dev", "libc-ares2"),
    "pugixml": ("libpugixml-dev", "libpugixml1v5"),
    "spdlog": ("libspdlog-dev", "libspdlog1.10"),
    "OpenSSL": ("libssl-dev", "libssl3"),
    "Threads": (None, None),
    "ZLIB": ("zlib1g-dev", "zlib1g"),
    "nlohmann_json": ("nlohmann-json3-dev", None),
    "sqlite3": ("libsqlite3-dev", "libsqlite3-0"),
    "libpq": ("libpq-dev", "libpq5"),
    "libmariadb": ("libmariadb-dev", "libmariadb3"),
    "libcrypt": ("libcrypt-dev", "libcrypt1"),
    "libcurl": ("libcurl4-openssl-dev", "libcurl4"),
}


def read(path):
    with open(f"{source}/{path}", encoding="utf-8") as f:
        return f.read()


cmake = read("CMakeLists.txt")
found = re.findall(r"^\s*find_package\((\w+)", cmake, re.M)
found += [m.split()[-1] for m in re.findall(r"^\s*pkg_check_modules\(([^)]*)\)", cmake, re.M)]
for name in found:
    if name not in KNOWN:
        problems.append(f"CMakeLists.txt finds {name}, which {sys.argv[0]} does not know: "
                        "add it to KNOWN and to every build recipe")


def words(text):
    return set(re.findall(r"[a-z0-9][a-z0-9.+-]+", text))


install_deps = words(re.sub(r"#.*", "", read(".ci/install-deps")).split("packages=(")[1].split(")")[0])
dockerfile = read("deploy/container/Dockerfile")
stages = {m.group(1): m.group(2) for m in
          re.finditer(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)}
build_stage, runtime_stage = words(stages["build"]), words(stages["runtime"])
control = read("deploy/debian/control")
build_depends = words(re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1))

for name in found:
    dev, runtime = KNOWN.get(name, (None, None))
    if dev:
        for where, have in ((".ci/install-deps", install_deps),
                            ("deploy/container/Dockerfile (build stage)", build_stage),
                            ("deploy/debian/control (Build-Depends)", build_depends)):
            if dev not in have:
                problems.append(f"{where} does not install {dev} (CMakeLists.txt finds {name})")
    if runtime and runtime not in runtime_stage:
        problems.append(f"deploy/container/Dockerfile (runtime stage) does not install {runtime} "
                        f"(the binary links {name})")

for p in problems:
    print(p)
print(f"{len(found)} libraries, {len(problems)} problems")
sys.exit(1 if problems else 0)
