#!/usr/bin/python3
"""A systemd unit's system-call filter, rebuilt with libseccomp outside systemd.

    unit_seccomp.py describe UNIT
    unit_seccomp.py exec UNIT PROGRAM [ARG ...]

Reads the [Service] section's SystemCallFilter=, SystemCallErrorNumber= and
SystemCallArchitectures= lines of UNIT (the file itself; drop-ins are not
read), expands @groups with `systemd-analyze syscall-filter` (groups contain
groups), and builds the filter as systemd 252's config_parse_syscall_filter
and apply_syscall_filter do:

- the first non-empty SystemCallFilter= decides the mode: without `~` an
  allow-list that starts from @default, with `~` a deny-list;
- after that, a line whose sign matches the mode adds its calls and one with
  the other sign removes them; an empty assignment resets everything;
- a call that is not allowed gets the unit's SystemCallErrorNumber= (an errno
  name or number, or `kill`), else the process is killed (SIGSYS), as
  systemd's default is; `name:ERRNO` sets one deny-list entry's errno;
- names the native architecture does not know are ignored, as systemd does;
- the filter covers the native architecture plus those SystemCallArchitectures=
  lists (all local ones when there is no such line); a call made through any
  other architecture kills the process.

`describe` prints what was built. `exec` loads the filter into this process
and execs PROGRAM, which inherits it as a service's main process does. As
systemd does, it first leaves root when the unit does: for DynamicUser=yes
or a User= other than root, PROGRAM runs as nobody (a stand-in for the
unit's user, which this machine need not have), so PROGRAM's path must be
reachable by nobody. A program run as root makes calls that it would not
make as the service user (SQLite fchown()s its journal when it is root), and
those are filtered too. Only the system-call filter and the user are
reproduced, not the rest of the sandbox, such as the options systemd also
turns into seccomp filters (RestrictAddressFamilies=, LockPersonality=,
MemoryDenyWriteExecute= and so on; each of those fails calls with EPERM).
"""

import errno
import os
import platform
import pwd
import subprocess
import sys

import seccomp

# systemd's architecture names (seccomp_arch_from_string) for libseccomp's.
ARCHES = {
    "x86": "X86", "x86-64": "X86_64", "x32": "X32",
    "arm": "ARM", "arm64": "AARCH64",
    "mips": "MIPS", "mips64": "MIPS64", "mips64-n32": "MIPS64N32",
    "mipsel": "MIPSEL", "mips64-le": "MIPSEL64", "mips64-le-n32": "MIPSEL64N32",
    "parisc": "PARISC", "parisc64": "PARISC64",
    "ppc": "PPC", "ppc64": "PPC64", "ppc64-le": "PPC64LE",
    "riscv64": "RISCV64", "s390": "S390", "s390x": "S390X",
}
# The architectures systemd filters on a host of this machine type
# (seccomp_local_archs), native last.
LOCAL_ARCHES = {
    "x86_64": ["x86", "x32", "x86-64"],
    "aarch64": ["arm", "arm64"],
}
NATIVE = {"x86_64": "x86-64", "aarch64": "arm64"}


class UnitError(Exception):
    pass


def service_settings(path, keys):
    """(key, value) pairs of the [Service] section, in file order."""
    with open(path, encoding="utf-8") as f:
        raw = f.read().splitlines()
    # Join continuation lines (a trailing backslash), skipping comments inside.
    lines, pending = [], None
    for line in raw:
        stripped = line.strip()
        if pending is not None and stripped[:1] in ("#", ";"):
            continue
        if stripped.endswith("\\"):
            pending = (pending + " " if pending is not None else "") + stripped[:-1]
            continue
        if pending is not None:
            stripped, pending = pending + " " + stripped, None
        lines.append(stripped)
    if pending is not None:
        lines.append(pending)
    section, found = None, []
    for line in lines:
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UnitError(f"{path}: not a setting: {line!r}")
        key, value = key.strip(), value.strip()
        if section == "Service" and key in keys:
            if "%" in value:
                raise UnitError(f"{path}: specifiers are not expanded here: {key}={value}")
            found.append((key, value))
    return found


_groups = {}


def expand(name):
    """The system calls a name stands for: itself, or a group's, recursively."""
    if not name.startswith("@"):
        return [name]
    if name not in _groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise UnitError(f"systemd-analyze syscall-filter {name}: {out.stderr.strip()}")
        members = []
        for line in out.stdout.splitlines()[1:]:
            word = line.strip()
            if word and not word.startswith("#"):
                members.append(word)
        _groups[name] = None  # a cycle would expand to nothing, not loop
        _groups[name] = [call for member in members for call in expand(member)]
    return _groups[name] or []


def parse_errno(text, what):
    if text.isdigit():
        return int(text)
    number = getattr(errno, text, None)
    if not text.startswith("E") or not isinstance(number, int):
        raise UnitError(f"{what}: not an errno name or number: {text!r}")
    return number


def known(name):
    try:
        seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
        return True
    except (ValueError, RuntimeError):
        return False


def build(unit):
    settings = service_settings(unit, {
        "SystemCallFilter", "SystemCallErrorNumber", "SystemCallArchitectures",
        "User", "DynamicUser"})
    calls = None          # name -> errno (None: the default action)
    allow_list = False
    error_number = None   # None: kill the process
    arches = None         # None: no SystemCallArchitectures= line
    unknown = set()
    user, dynamic_user = "", False
    for key, value in settings:
        if key == "User":
            user = value
        elif key == "DynamicUser":
            dynamic_user = value.lower() in ("1", "yes", "true", "on")
        elif key == "SystemCallErrorNumber":
            if value in ("", "kill"):
                error_number = None
            else:
                error_number = parse_errno(value, key)
        elif key == "SystemCallArchitectures":
            if value == "":
                arches = None
            else:
                arches = (arches or []) + value.split()
        elif value == "":
            calls, allow_list = None, False
        else:
            invert = value.startswith("~")
            words = value[1:].split() if invert else value.split()
            if calls is None:
                calls, allow_list = {}, not invert
                if allow_list:
                    for call in expand("@default"):
                        if known(call):
                            calls[call] = None
            for word in words:
                name, _, err = word.partition(":")
                err = parse_errno(err, f"{key}={value}") if err else None
                for call in expand(name):
                    if not known(call):
                        unknown.add(call)
                    elif (not invert) == allow_list:
                        calls[call] = err
                    else:
                        calls.pop(call, None)
    if calls is None:
        raise UnitError(f"{unit}: no SystemCallFilter= line: nothing to check")

    machine = platform.machine()
    native = NATIVE.get(machine)
    local = LOCAL_ARCHES.get(machine, [native] if native else [])
    if arches is None:
        wanted = set(local)
    else:
        for a in arches:
            if a != "native" and a not in ARCHES:
                raise UnitError(f"{unit}: unknown architecture {a!r}")
        wanted = {native if a == "native" else a for a in arches}
    # systemd never blocks the native architecture, and filters only local ones.
    extra = sorted(a for a in wanted if a in local and a != native)
    return {
        "calls": calls, "allow_list": allow_list, "error_number": error_number,
        "extra_arches": extra, "native": native or machine, "unknown": unknown,
        "user": ("DynamicUser=yes" if dynamic_user
                 else f"User={user}" if user not in ("", "root", "0") else None),
    }


def action_name(error_number):
    if error_number is None:
        return "kill the process (SIGSYS)"
    return f"fail with {errno.errorcode.get(error_number, error_number)}"


def load(spec):
    kill = getattr(seccomp, "KILL_PROCESS", seccomp.KILL)
    negative = kill if spec["error_number"] is None else seccomp.ERRNO(spec["error_number"])
    if spec["allow_list"]:
        f = seccomp.SyscallFilter(negative)
    else:
        f = seccomp.SyscallFilter(seccomp.ALLOW)
    for a in spec["extra_arches"]:
        f.add_arch(getattr(seccomp.Arch, ARCHES[a]))
    for call, err in sorted(spec["calls"].items()):
        if spec["allow_list"]:
            action = seccomp.ALLOW
        else:
            action = negative if err is None else seccomp.ERRNO(err)
        try:
            f.add_rule(action, call)
        except (ValueError, RuntimeError):
            # Not a call on one of the extra architectures: skipped there,
            # as systemd skips it.
            pass
    f.load()


def describe(unit, spec):
    action = action_name(spec["error_number"])
    if spec["allow_list"]:
        print(f"{unit}: allow-list of {len(spec['calls'])} system calls; any other: {action}")
    else:
        print(f"{unit}: deny-list of {len(spec['calls'])} system calls, each: {action} "
              "(or its own errno); any other: allowed")
    print(f"architectures: {', '.join([spec['native'] + ' (native)'] + spec['extra_arches'])}; "
          "a call through any other kills the process")
    if spec["user"]:
        print(f"runs as nobody, standing in for the unit's {spec['user']}")
    else:
        print("runs as root, as the unit sets no User= or DynamicUser=")
    if spec["unknown"]:
        print(f"ignored, unknown to this architecture: {' '.join(sorted(spec['unknown']))}")


def main(argv):
    if len(argv) >= 3 and argv[1] == "describe":
        describe(argv[2], build(argv[2]))
        return 0
    if len(argv) >= 4 and argv[1] == "exec":
        spec = build(argv[2])
        program = argv[3]
        sys.stderr.write(f"unit_seccomp: loading {argv[2]}'s system-call filter, "
                         f"then exec {program}\n")
        sys.stderr.flush()
        if spec["user"] and os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        if not os.access(program, os.X_OK):
            raise UnitError(f"{program}: not executable by uid {os.getuid()}")
        load(spec)
        # Nothing but execve between the filter and the program.
        os.execv(program, argv[3:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except UnitError as e:
        sys.stderr.write(f"unit_seccomp: {e}\n")
        sys.exit(1)
