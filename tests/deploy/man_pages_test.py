#!/usr/bin/env python3
"""The man pages say what the program and README say (CTest deploy.man_pages).

  man_pages_test.py MAILCONFD_BINARY SOURCE_DIR

mailconfd(8) (deploy/man/mailconfd.8.scd) against `--help`, and README's "The command line":
the same commands, the same `render` kinds, the same options, in each direction.
mailconfd.xml(5) (deploy/man/mailconfd.xml.5.scd) against README's "Configuration
reference" and against the loader (every name in a check_known() call of
service/config/config_file.cpp): the same element/attribute terms, and no name that the
loader does not know. Prints every difference, exits 1 if there is any.
"""
import re
import subprocess
import sys

binary, source = sys.argv[1], sys.argv[2]
problems = []


def read(path):
    with open(f"{source}/{path}", encoding="utf-8") as f:
        return f.read()


def section(text, heading):
    """The part of a markdown text from `## heading` to the next `## `."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def compare(what, left_name, left, right_name, right):
    for item in sorted(left - right):
        problems.append(f"{what} '{item}' is in {left_name} but not in {right_name}")
    for item in sorted(right - left):
        problems.append(f"{what} '{item}' is in {right_name} but not in {left_name}")


OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")


def options(text):
    return set(OPTION.findall(text))


# --- mailconfd(8) against --help and README -----------------------------------------------
helps = []
for args in (["--help"], ["serve", "--help"], ["check", "--help"], ["render", "--help"],
             ["dns", "--help"], ["dns", "zone", "--help"], ["dns", "check", "--help"],
             ["probe", "--help"], ["cutover", "--help"]):
    run = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        problems.append(f"mailconfd {' '.join(args)} exits {run.returncode}")
    helps.append(run.stdout)
usage = helps[0]
help_text = "\n".join(helps)
man8 = read("deploy/man/mailconfd.8.scd")
readme = read("README.md")
readme_cli = section(readme, "The command line")

compare("option", "--help", options(help_text), "mailconfd.8", options(man8))
compare("option", "--help", options(help_text), "README (The command line)", options(readme_cli))

# Commands: the lines under "commands:" in the usage, e.g. "  dns zone [--config FILE] ...".
commands_block = usage.split("commands:\n", 1)[1].split("\n\n", 1)[0]
usage_commands = set()
for line in commands_block.splitlines():
    m = re.match(r"  ([a-z]+(?: [a-z]+)?)(?= \[| --| [a-z]+\||\s*$| [A-Z])", line)
    if m:
        words = m.group(1).split()
        # "dns zone", but "render autoconfig|…" and "check --config" are one-word commands.
        if len(words) == 2 and words[0] != "dns":
            words = words[:1]
        usage_commands.add(" ".join(words))
if not usage_commands:
    problems.append("no commands found in mailconfd --help")
synopsis = man8.split("# SYNOPSIS", 1)[1].split("# DESCRIPTION", 1)[0]
man_commands = set(re.findall(r"^\*mailconfd ([a-z]+(?: zone| check)?)\*", synopsis, re.M))
compare("command", "--help", usage_commands, "mailconfd.8 SYNOPSIS", man_commands)
readme_commands = set(re.findall(r"^mailconfd ([a-z]+(?: zone| check)?)\b", readme_cli, re.M))
compare("command", "--help", usage_commands, "README (The command line)", readme_commands)
man_command_sections = man8.split("# COMMANDS", 1)[1].split("# EXIT STATUS", 1)[0]
for command in usage_commands:
    if not re.search(rf"^\*{command}\*", man_command_sections, re.M):
        problems.append(f"mailconfd.8 COMMANDS has no entry '*{command}*'")


def render_kinds(text, pattern):
    m = re.search(pattern, text)
    return set(m.group(1).split("|")) if m else set()


compare("render kind", "--help", render_kinds(usage, r"render ([a-z|]+) "),
        "mailconfd.8", render_kinds(synopsis.replace("*", ""), r"render ([a-z|]+) "))

# --- mailconfd.xml(5) against README and the loader -----------------------------------------
loader = read("service/config/config_file.cpp")
known = {"mailconfd", "text"}
for call in re.findall(r"check_known\(\s*problems_,\s*\w+,\s*(\{[^}]*\}),\s*(\{[^}]*\})\)",
                       loader):
    for group in call:
        known.update(re.findall(r'"([a-z][a-z0-9-]*)"', group))
if len(known) < 40:
    problems.append(f"only {len(known)} names found in the loader's check_known calls")
man5 = read("deploy/man/mailconfd.xml.5.scd")
readme_config = section(readme, "Configuration reference")


def terms(cells):
    """`limits/@max-header-bytes`, `@max-headers` → {limits/@max-header-bytes, limits/@max-headers}"""
    result = set()
    for cell in cells:
        element = ""
        for token in re.findall(r"[`*]([a-z][a-z0-9/@-]*|@[a-z][a-z0-9-]*)[`*]", cell):
            if token.startswith("@"):
                token = f"{element}/{token}"
            element = token.split("/@")[0]
            result.add(token)
    return result


readme_terms = terms(re.findall(r"^\| ([^|]+) \|", readme_config.split(
    "| Element / attribute |", 1)[1], re.M))
# In the man page a term is a line of bold words that a tab-indented definition follows.
man_terms = terms(re.findall(r"^(\*[a-z][^\n]*)\n\t", man5.split("# SERVER", 1)[1], re.M))
compare("configuration term", "README (Configuration reference)", readme_terms,
        "mailconfd.xml.5", man_terms)


def words(text):
    return set(re.findall(r"(?<![\w@/.-])([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])", text))


for name in sorted(known):
    for where, text in (("mailconfd.xml.5", man5), ("README (Configuration reference)",
                                                    readme_config)):
        if name not in words(text) and f"@{name}" not in text and f"/{name}" not in text:
            problems.append(f"'{name}', which the loader accepts, is not in {where}")
for where, found in (("mailconfd.xml.5", man_terms), ("README (Configuration reference)",
                                                      readme_terms)):
    for term in sorted(found):
        for part in re.split(r"/@?", term):
            if part not in known:
                problems.append(f"{where} names '{part}' ({term}), which the loader does not know")
for where, text in (("mailconfd.xml.5", man5), ("README (Configuration reference)",
                                                readme_config)):
    # The examples (fenced blocks); in prose, <reason> and the like are placeholders.
    examples = "".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.S))
    if "<provider" not in examples:
        problems.append(f"{where} has no example configuration")
    for element in sorted(set(re.findall(r"<([a-z][a-z-]*)(?:>|/>|\s+[a-z-]+=)", examples))):
        if element not in known:
            problems.append(f"{where} shows <{element}>, which the loader does not know")

for problem in problems:
    print(problem)
print(f"{len(problems)} problem(s); {len(options(help_text))} options, "
      f"{len(usage_commands)} commands, {len(readme_terms)} configuration terms, "
      f"{len(known)} loader names")
sys.exit(1 if problems else 0)
