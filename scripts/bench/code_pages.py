"""Where a binary's share of the RSS comes from: the code a cold start executes, in pages and in
fault-around windows (valgrind's lackey)."""
import os
import shutil
import subprocess
import tempfile

from .run import binary_path, start, stop

CODE_PAGE_INVOCATIONS = 20
FAULT_AROUND = 64 * 1024  # Linux's default fault_around_bytes: a read fault maps the aligned 64 KB around it


def text_section(path):
    """(address, size) of the executable's code (.text, and a .text.hot if a layout put one first),
    from the section headers."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    spans = []
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] in (".text", ".text.hot"):
            spans.append((int(fields[3], 16), int(fields[5], 16)))
    if not spans:
        raise RuntimeError(f"{path}: no .text section")
    low = min(start for start, _ in spans)
    return low, max(start + size for start, size in spans) - low


def executed_code(api, proxy, name, env, event):
    """The addresses in the binary's .text of every superblock a cold start and CODE_PAGE_INVOCATIONS
    invocations execute, in the order first executed (valgrind's lackey), and .text's size."""
    with tempfile.TemporaryDirectory() as folder:
        trace = os.path.join(folder, "trace")
        lackey = ("valgrind", "--tool=lackey", "--trace-superblocks=yes", f"--log-file={trace}")
        process, _ = start(api, proxy, name, env, under=lackey)
        for _ in range(CODE_PAGE_INVOCATIONS):
            api.invoke(event)
        stop(api, process)
        low, size = text_section(binary_path(name))
        executed = {}
        with open(trace) as f:
            for line in f:
                if line.startswith("SB "):
                    address = int(line[3:], 16)
                    if low <= address < low + size:
                        executed.setdefault(address, None)
    return list(executed), size


def code_pages(api, proxy, name, env, event):
    """Where the binary's part of the RSS comes from: the code a cold start and CODE_PAGE_INVOCATIONS
    invocations execute, counted in 4 KB pages and in the 64 KB windows the kernel's fault-around
    maps (a file page already in the page cache is mapped with its aligned neighbours). None without
    valgrind."""
    if not shutil.which("valgrind"):
        return None
    executed, size = executed_code(api, proxy, name, env, event)
    return {"text_kb": size / 1024, "executed_kb": 4 * len({a >> 12 for a in executed}),
            "fault_around_kb": FAULT_AROUND // 1024 * len({a // FAULT_AROUND for a in executed}),
            "invocations": CODE_PAGE_INVOCATIONS}
