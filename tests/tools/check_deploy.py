#!/usr/bin/python3
"""check_deploy.py — checks deploy/kubernetes/*.yaml against the Containerfile
and `profefs serve --help`, for tests/integration/kubernetes.sh.

    check_deploy.py REPO_DIR HELP_FILE

Prints one line per check, "ok DESCRIPTION" or "FAIL DESCRIPTION: why", and
then, for the shell to run for real, "args single-node ARG..." and
"args s3-nodes ARG..." (the container args of each workload, tab-separated).
Uses Debian's python3-yaml (scripts/setup installs it).
"""
import json
import re
import shlex
import sys

import yaml

RESULTS = []


def check(desc, cond, why=""):
    RESULTS.append(("ok " + desc) if cond else ("FAIL %s: %s" % (desc, why)))


def containerfile(path):
    """The runtime (last) stage of a Containerfile: its instructions by name,
    with continuation lines joined."""
    text = re.sub(r"\\\n", " ", open(path).read())
    stages, cur = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            cur = {}
            stages.append(cur)
        cur.setdefault(word, []).append(rest.strip())
    return stages[-1]


def runtime_facts(cf):
    """What the manifests must agree with: port, volume, uid/gid, entrypoint,
    default command, health check path."""
    run = " ".join(cf.get("RUN", []))
    uid = re.search(r"useradd\b[^&]*--uid (\d+)", run)
    gid = re.search(r"groupadd\b[^&]*--gid (\d+)", run)
    health = re.search(r"http://[^/ ]+(/\S*)", " ".join(cf.get("HEALTHCHECK", [])))
    return {
        "port": int(cf["EXPOSE"][0].split("/")[0]),
        "volume": cf["VOLUME"][0],
        "user": cf["USER"][0],
        "uid": int(uid.group(1)) if uid else None,
        "gid": int(gid.group(1)) if gid else None,
        "entrypoint": json.loads(cf["ENTRYPOINT"][0]),
        "cmd": json.loads(cf["CMD"][0]),
        "health": health.group(1) if health else None,
    }


def option_value(args, name):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def check_pod(shape, docs, facts, help_text):
    """Checks shared by both shapes; returns the profefs container."""
    kinds = {d["kind"]: d for d in docs}
    work = kinds.get("StatefulSet") or kinds.get("Deployment")
    svc = kinds.get("Service")
    tmpl = work["spec"]["template"]
    labels = tmpl["metadata"]["labels"]
    match = work["spec"]["selector"]["matchLabels"]
    check(f"{shape}: selector matches the pod labels",
          all(labels.get(k) == v for k, v in match.items()), f"{match} vs {labels}")
    check(f"{shape}: Service selects the pods",
          svc is not None and all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "no Service or selector mismatch")
    pod = tmpl["spec"]
    c = pod["containers"][0]
    args = [str(a) for a in c.get("args", [])]
    port = c["ports"][0]
    check(f"{shape}: no command, so the image's ENTRYPOINT {facts['entrypoint']} runs",
          "command" not in c, f"command {c.get('command')}")
    check(f"{shape}: image is profefs", c["image"].rsplit("/", 1)[-1].split(":")[0] == "profefs",
          c["image"])
    check(f"{shape}: args start with the Containerfile's subcommand",
          args[:1] == facts["cmd"][:1], f"{args[:1]} vs {facts['cmd'][:1]}")
    opts = [a.split("=")[0] for a in args if a.startswith("--")]
    unknown = [o for o in opts if not re.search(r"(^|[ ,])" + re.escape(o) + r"(?=[ ,=\n])", help_text, re.M)]
    check(f"{shape}: every option is in `profefs serve --help`", not unknown, f"unknown {unknown}")
    addr = option_value(args, "--addr") or ""
    check(f"{shape}: --addr listens on all interfaces", addr.startswith("0.0.0.0:"), addr)
    check(f"{shape}: --addr port = containerPort = EXPOSE",
          addr.rsplit(":", 1)[-1] == str(port["containerPort"]) and port["containerPort"] == facts["port"],
          f"{addr} / {port['containerPort']} / {facts['port']}")
    sport = svc["spec"]["ports"][0]
    check(f"{shape}: Service targets the container port",
          sport["targetPort"] in (port.get("name"), port["containerPort"]), str(sport))
    for probe in ("readinessProbe", "livenessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        check(f"{shape}: {probe} GETs the health check path {facts['health']}",
              g.get("path") == facts["health"] == "/api/0/version", str(g))
        check(f"{shape}: {probe} port is the container port",
              g.get("port") in (port.get("name"), port["containerPort"]), str(g))
    sc = pod.get("securityContext", {})
    check(f"{shape}: runs as the image's user (uid {facts['uid']})",
          sc.get("runAsUser") == facts["uid"] and sc.get("runAsNonRoot") is True, str(sc))
    check(f"{shape}: runAsGroup is the image's group (gid {facts['gid']})",
          sc.get("runAsGroup") == facts["gid"], str(sc))
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        vols = {v["name"] for v in pod.get("volumes", [])}
        check(f"{shape}: read-only root, so /tmp is a volume",
              mounts.get("/tmp") in vols, str(mounts))
    return c, args, mounts


def main():
    repo, help_file = sys.argv[1], sys.argv[2]
    help_text = open(help_file).read()
    facts = runtime_facts(containerfile(repo + "/Containerfile"))
    check("Containerfile: runtime user is named in useradd",
          facts["user"] in ("profefs", str(facts["uid"])) and facts["uid"] is not None, str(facts))
    check("Containerfile: default command serves /data on the exposed port",
          facts["cmd"] == ["serve", "--data", facts["volume"], "--addr", f"0.0.0.0:{facts['port']}"],
          str(facts["cmd"]))
    images = set()

    # ---- one node, persistent volume -------------------------------------------------
    docs = [d for d in yaml.safe_load_all(open(repo + "/deploy/kubernetes/single-node.yaml")) if d]
    check("single-node: a Service and a StatefulSet",
          sorted(d["kind"] for d in docs) == ["Service", "StatefulSet"], str([d["kind"] for d in docs]))
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    check("single-node: one replica (one SQLite writer)", sts["spec"]["replicas"] == 1, str(sts["spec"]["replicas"]))
    c, args, mounts = check_pod("single-node", docs, facts, help_text)
    images.add(c["image"])
    data = option_value(args, "--data")
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    check("single-node: --data is the Containerfile's VOLUME", data == facts["volume"], str(data))
    check("single-node: --data is mounted from a PersistentVolumeClaim",
          mounts.get(data) in claims, f"{mounts} / {claims}")
    check("single-node: args are the Containerfile's CMD plus options",
          args[:len(facts["cmd"])] == facts["cmd"], str(args))
    check("single-node: fsGroup gives the volume to the image's group",
          sts["spec"]["template"]["spec"]["securityContext"].get("fsGroup") == facts["gid"],
          str(sts["spec"]["template"]["spec"]["securityContext"]))
    print("args single-node\t" + "\t".join(args))

    # ---- N stateless nodes over one bucket ---------------------------------------------
    docs = [d for d in yaml.safe_load_all(open(repo + "/deploy/kubernetes/s3-nodes.yaml")) if d]
    check("s3-nodes: a Secret, a Service and a Deployment",
          sorted(d["kind"] for d in docs) == ["Deployment", "Secret", "Service"], str([d["kind"] for d in docs]))
    dep = next(d for d in docs if d["kind"] == "Deployment")
    secret = next(d for d in docs if d["kind"] == "Secret")
    check("s3-nodes: more than one replica", dep["spec"]["replicas"] > 1, str(dep["spec"]["replicas"]))
    c, args, mounts = check_pod("s3-nodes", docs, facts, help_text)
    images.add(c["image"])
    data = option_value(args, "--data") or ""
    check("s3-nodes: --data is s3://BUCKET/PREFIX", re.fullmatch(r"s3://[a-z0-9.-]+(/\S+)?", data) is not None, data)
    check("s3-nodes: no volume for data (stateless)", data not in mounts, str(mounts))
    env = {e["name"]: e for e in c.get("env", [])}
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(f"s3-nodes: {name} comes from the Secret",
              ref.get("name") == secret["metadata"]["name"] and ref.get("key") in keys, str(env.get(name)))
    for name in ("AWS_REGION", "AWS_ENDPOINT_URL_S3"):
        check(f"s3-nodes: {name} is set", bool(env.get(name, {}).get("value")), str(env.get(name)))
    if "s3://" in help_text:
        missing = [n for n in env if n not in help_text]
        check("s3-nodes: every variable is one `profefs serve --help` names", not missing, f"not in help: {missing}")
    print("args s3-nodes\t" + "\t".join(args))

    check("both shapes run the same image", len(images) == 1, str(images))
    for r in RESULTS:
        print(r)


if __name__ == "__main__":
    main()
