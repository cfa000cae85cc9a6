#!/usr/bin/env python3
"""otlp_gen.py — OTLP profiles requests for tests/integration/otlp.sh, built
with Debian's protobuf compiler and python3-protobuf from otlp/otlp.proto
(the published opentelemetry-proto v1.11.0 messages, field for field), and
the checks of what comes back.

  otlp_gen.py request CASE OUT     write the request of CASE to OUT
  otlp_gen.py expect CASE          the folded stacks CASE's cpu profiles merge
                                   to, from the call tree they were built from
  otlp_gen.py folded PPROF         folded stacks of a pprof (gzip or not):
                                   "root;...;leaf VALUE", sorted, one per line
  otlp_gen.py response FILE        "REJECTED MESSAGE" of an ExportProfilesServiceResponse
  otlp_gen.py status FILE          "CODE MESSAGE" of a google.rpc.Status
  otlp_gen.py from-pprof IN OUT SERVICE [SHIFT] [mark]
                                   a request holding the pprof IN (its last
                                   sample type), its time moved SHIFT seconds;
                                   with mark, the first mapping's file is
                                   named 00000000 (bench/doors.sh makes each
                                   request distinct there) and the resource
                                   has the attribute region=eu
"""
import gzip
import importlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load(proto_dir, name):
    """Compiles proto_dir/name.proto for Python and imports it."""
    out = tempfile.mkdtemp(prefix="otlp-gen-")
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out,
                    name + ".proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module(name + "_pb2")


O = load(os.path.join(ROOT, "otlp"), "otlp")
P = load(os.path.join(ROOT, "proto"), "profile")

NOW = int(time.time()) - 60

# The call trees, root first; a tuple frame is one location with inlined
# functions (outermost first, as folded stacks show them).  Values are
# counts; "ts" ones are sent as that many timestamps and no values.
CPU_A = [(["main", "work", "hot"], 50, "v"),
         (["main", "work", "cold"], 20, "v"),
         (["main", "idle"], 7, "ts"),
         (["main", "work", ("outer", "inlined")], 13, "v")]
CPU_B = [(["main", "work", "hot"], 5, "v"),
         (["main", "other"], 3, "v")]
HEAP = [(["main", "alloc"], 4096, "v")]
WALL = [(["main", "sleep"], 9, "v")]


class Dict:
    """Builds a ProfilesDictionary: index 0 of every table is the zero entry."""

    def __init__(self):
        self.d = O.ProfilesDictionary()
        self.strs = {}
        self.fns = {}
        self.locs = {}
        self.stacks = {}
        self.attrs = {}
        self.s("")
        self.d.mapping_table.add()
        self.d.location_table.add()
        self.d.function_table.add()
        self.d.attribute_table.add()
        self.d.stack_table.add()
        m = self.d.mapping_table.add()
        m.memory_start, m.memory_limit = 0x400000, 0x800000
        m.filename_strindex = self.s("/usr/bin/app")

    def s(self, text):
        if text not in self.strs:
            self.strs[text] = len(self.d.string_table)
            self.d.string_table.append(text)
        return self.strs[text]

    def fn(self, name):
        if name not in self.fns:
            f = self.d.function_table.add()
            f.name_strindex = self.s(name)
            f.system_name_strindex = self.s(name + ".sys")
            f.filename_strindex = self.s(name + ".c")
            self.fns[name] = len(self.d.function_table) - 1
        return self.fns[name]

    def loc(self, frame):
        if frame not in self.locs:
            loc = self.d.location_table.add()
            loc.mapping_index = 1
            loc.address = 0x400000 + 16 * len(self.d.location_table)
            names = frame if isinstance(frame, tuple) else (frame,)
            for depth, name in enumerate(reversed(names)):  # innermost first
                line = loc.lines.add()
                line.function_index = self.fn(name)
                line.line = 10 + depth
            self.locs[frame] = len(self.d.location_table) - 1
        return self.locs[frame]

    def stack(self, frames):
        key = tuple(frames)
        if key not in self.stacks:
            st = self.d.stack_table.add()
            st.location_indices.extend(self.loc(f) for f in reversed(frames))  # leaf first
            self.stacks[key] = len(self.d.stack_table) - 1
        return self.stacks[key]

    def attr(self, key, value, unit=""):
        k = (key, value, unit)
        if k not in self.attrs:
            a = self.d.attribute_table.add()
            a.key_strindex = self.s(key)
            if isinstance(value, int):
                a.value.int_value = value
            else:
                a.value.string_value = value
            if unit:
                a.unit_strindex = self.s(unit)
            self.attrs[k] = len(self.d.attribute_table) - 1
        return self.attrs[k]


def profile(dic, tree, stype, sunit, ptype="", punit=""):
    p = O.Profile()
    p.sample_type.type_strindex = dic.s(stype)
    p.sample_type.unit_strindex = dic.s(sunit)
    if ptype:
        p.period_type.type_strindex = dic.s(ptype)
        p.period_type.unit_strindex = dic.s(punit)
        p.period = 10000000
    p.time_unix_nano = NOW * 10**9
    p.duration_nano = 10 * 10**9
    for frames, value, shape in tree:
        s = p.samples.add()
        s.stack_index = dic.stack(frames)
        s.attribute_indices.append(dic.attr("thread.name", "worker"))
        s.attribute_indices.append(dic.attr("bytes", 64, "bytes"))
        if shape == "ts":
            s.timestamps_unix_nano.extend(NOW * 10**9 + i for i in range(value))
        else:
            s.values.append(value)
    return p


def resource(req, attrs):
    rp = req.resource_profiles.add()
    for k, v in attrs.items():
        kv = rp.resource.attributes.add()
        kv.key = k
        if isinstance(v, int):
            kv.value.int_value = v
        else:
            kv.value.string_value = v
    return rp.scope_profiles.add()


def build(case):
    req = O.ExportProfilesServiceRequest()
    dic = Dict()
    if case == "good":
        sp = resource(req, {"service.name": "otlp-app", "host.name": "h1",
                            "process.pid": 4242, "k8s.pod.name": "app-7f9c"})
        a = profile(dic, CPU_A, "samples", "count", "cpu", "nanoseconds")
        a.attribute_indices.append(dic.attr("profile.kind", "ebpf"))
        sp.profiles.append(a)
        sp.profiles.append(profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds"))
        sp.profiles[1].attribute_indices.append(dic.attr("profile.kind", "ebpf"))
        sp = resource(req, {"service.name": "otlp-app", "host.name": "h1",
                            "process.pid": 4242, "k8s.pod.name": "app-7f9c"})
        sp.profiles.append(profile(dic, HEAP, "alloc_space", "bytes"))
        sp.profiles.append(profile(dic, WALL, "off_cpu", "nanoseconds"))
        sp = resource(req, {"host.name": "h2"})
        sp.profiles.append(profile(dic, WALL, "wall", "nanoseconds"))
    elif case == "dangling":
        # one good profile and three that point outside their tables
        sp = resource(req, {"service.name": "otlp-bad"})
        sp.profiles.append(profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds"))
        p = profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds")
        p.samples[0].stack_index = 999
        sp.profiles.append(p)
        p = profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds")
        p.sample_type.type_strindex = 100000
        sp.profiles.append(p)
        p = profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds")
        del p.samples[0].values[:]
        sp.profiles.append(p)
        # a location whose function index is dangling, reached by a new stack
        loc = dic.d.location_table.add()
        loc.lines.add().function_index = 777
        st = dic.d.stack_table.add()
        st.location_indices.append(len(dic.d.location_table) - 1)
        p = profile(dic, CPU_B, "samples", "count", "cpu", "nanoseconds")
        p.samples[0].stack_index = len(dic.d.stack_table) - 1
        sp.profiles.append(p)
    else:
        raise SystemExit("unknown case " + case)
    req.dictionary.CopyFrom(dic.d)
    return req.SerializeToString()


def expect(case):
    assert case == "good"
    tot = {}
    for tree in (CPU_A, CPU_B):
        for frames, value, _ in tree:
            names = []
            for f in frames:
                names.extend(f if isinstance(f, tuple) else (f,))
            key = ";".join(names)
            tot[key] = tot.get(key, 0) + value
    return sorted(f"{k} {v}" for k, v in tot.items())


def folded(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    p = P.Profile()
    p.ParseFromString(data)
    st = [s.decode() if isinstance(s, bytes) else s for s in p.string_table]
    fn = {f.id: st[f.name] for f in p.function}
    loc = {l.id: [fn[line.function_id] for line in l.line] for l in p.location}
    tot = {}
    for s in p.sample:
        names = []
        for lid in reversed(s.location_id):            # root first
            names.extend(reversed(loc[lid]))           # outermost first
        key = ";".join(names)
        tot[key] = tot.get(key, 0) + s.value[-1]
    return sorted(f"{k} {v}" for k, v in tot.items() if v != 0)


def from_pprof(path, service, shift=0, mark=False):
    """The request an OTLP exporter would send for the pprof at path: one
    profile of its last sample type, every table moved into the dictionary."""
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    p = P.Profile()
    p.ParseFromString(data)
    st = [x.decode() if isinstance(x, bytes) else x for x in p.string_table]
    dic = Dict()
    maps = {}
    for m in p.mapping:
        o = dic.d.mapping_table.add()
        o.memory_start, o.memory_limit, o.file_offset = m.memory_start, m.memory_limit, m.file_offset
        o.filename_strindex = dic.s("00000000" if mark and not maps else st[m.filename])
        maps[m.id] = len(dic.d.mapping_table) - 1
    fns = {}
    for f in p.function:
        o = dic.d.function_table.add()
        o.name_strindex = dic.s(st[f.name])
        o.system_name_strindex = dic.s(st[f.system_name])
        o.filename_strindex = dic.s(st[f.filename])
        o.start_line = f.start_line
        fns[f.id] = len(dic.d.function_table) - 1
    locs = {}
    for l in p.location:
        o = dic.d.location_table.add()
        o.mapping_index = maps.get(l.mapping_id, 0)
        o.address = l.address
        for line in l.line:
            x = o.lines.add()
            x.function_index = fns[line.function_id]
            x.line = line.line
        locs[l.id] = len(dic.d.location_table) - 1
    req = O.ExportProfilesServiceRequest()
    sp = resource(req, {"service.name": service, **({"region": "eu"} if mark else {})})
    q = sp.profiles.add()
    last = len(p.sample_type) - 1
    q.sample_type.type_strindex = dic.s(st[p.sample_type[last].type])
    q.sample_type.unit_strindex = dic.s(st[p.sample_type[last].unit])
    q.period_type.type_strindex = dic.s(st[p.period_type.type])
    q.period_type.unit_strindex = dic.s(st[p.period_type.unit])
    q.period = p.period
    q.time_unix_nano = p.time_nanos + shift * 10**9
    q.duration_nano = p.duration_nanos
    stacks = {}
    for smp in p.sample:
        key = tuple(smp.location_id)
        if key not in stacks:
            x = dic.d.stack_table.add()
            x.location_indices.extend(locs[i] for i in key)
            stacks[key] = len(dic.d.stack_table) - 1
        o = q.samples.add()
        o.stack_index = stacks[key]
        o.values.append(smp.value[last])
        for lab in smp.label:
            if lab.str:
                o.attribute_indices.append(dic.attr(st[lab.key], st[lab.str]))
            else:
                o.attribute_indices.append(dic.attr(st[lab.key], lab.num, st[lab.num_unit]))
    req.dictionary.CopyFrom(dic.d)
    return req.SerializeToString()


def main():
    cmd = sys.argv[1]
    if cmd == "request":
        open(sys.argv[3], "wb").write(build(sys.argv[2]))
    elif cmd == "expect":
        print("\n".join(expect(sys.argv[2])))
    elif cmd == "folded":
        print("\n".join(folded(sys.argv[2])))
    elif cmd == "from-pprof":
        shift = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        mark = len(sys.argv) > 6 and sys.argv[6] == "mark"
        open(sys.argv[3], "wb").write(from_pprof(sys.argv[2], sys.argv[4], shift, mark))
    elif cmd == "response":
        r = O.ExportProfilesServiceResponse()
        r.ParseFromString(open(sys.argv[2], "rb").read())
        print(r.partial_success.rejected_profiles, r.partial_success.error_message)
    elif cmd == "status":
        s = O.Status()
        s.ParseFromString(open(sys.argv[2], "rb").read())
        print(s.code, s.message)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
