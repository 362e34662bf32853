"""The kind node image, assembled here the way ``kind build node-image`` does, by hand.

``kind build node-image`` pulls etcd, coredns, pause, kindnetd and the storage images, and
aborts when it cannot. So its steps are done here instead, with nothing pulled:

1. start a container from the base image (:mod:`harness.kindbuild.kindbase`);
2. copy in kubelet, kubeadm and kubectl (``/usr/bin``) and write ``/kind/version``;
3. check ``kubeadm config images list`` against the images built here
   (:mod:`harness.kindbuild.kindimages`), write them as archives, and ``ctr import``
   them into the node's containerd (namespace ``k8s.io``, pinned);
4. write kind's CNI and storage manifests, then ``docker commit`` with kind's entrypoint.

The tag is ``conntrack-harness/kind-node:<kubernetes version>-<hash>``; the hash covers the
base image and every binary and manifest, so the image is rebuilt only when one changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from cthcommon.errors import BackendError
from harness.kindbuild import kindbase, kindimages, pause
from harness.kindbuild.dockerd import Dockerd
from harness.kindbuild.imagearchive import write_archive
from harness.upstream import kindparts, locate, release
from harness.upstream.cache import sha256_of

NODE_REPO = "conntrack-harness/kind-node"
NODE_BINARIES = ("kubelet", "kubeadm", "kubectl")
WAIT_CONTAINERD = (
    "for i in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] "
    "&& ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/containerd.log; exit 1"
)


def binaries(kubernetes: str | None = None) -> tuple[kindimages.Versions, dict[str, Path]]:
    rel = release(kubernetes)
    pause_tag, pause_bin = pause.build(rel.kubernetes)
    bins: dict[str, Path] = {
        b: locate(b, rel.kubernetes)
        for b in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
            "kubelet",
            "kubeadm",
            "kubectl",
            "etcd",
            "coredns",
        )
    }
    bins["pause"] = pause_bin
    v = kindimages.Versions(rel.kubernetes, rel.etcd, rel.coredns, pause_tag)
    return v, bins


def node_key(base_tag: str, v: kindimages.Versions, bins: dict[str, Path]) -> str:
    parts = [base_tag, json.dumps(v.__dict__, sort_keys=True)]
    parts += [f"{name}={sha256_of(p)}" for name, p in sorted(bins.items())]
    parts += [kindimages.static_cni_manifest(v), kindimages.STORAGE_MANIFEST]
    parts += [
        kindimages.STATIC_CNI_SH,
        Path(__file__).read_text(),
        Path(kindimages.__file__).read_text(),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _exec(docker: Dockerd, cid: str, *argv: str, timeout_s: float = 300) -> str:
    return docker.cli("exec", cid, *argv, timeout_s=timeout_s)


def _write(docker: Dockerd, cid: str, dest: str, text: str, tmp: Path) -> None:
    f = tmp / Path(dest).name
    f.write_text(text)
    docker.cli("cp", str(f), f"{cid}:{dest}")


def build(docker: Dockerd, kubernetes: str | None = None, *, log: list[str] | None = None) -> str:
    """The node image's tag (built if this Docker does not have it yet)."""
    notes = log if log is not None else []
    t0 = time.monotonic()
    v, bins = binaries(kubernetes)
    crictl = kindparts.build("crictl") / "crictl"
    base = kindbase.build_base(docker, crictl, kindimages.image_names(v)["pause"])
    notes.append(f"base {base} ({time.monotonic() - t0:.0f} s)")
    tag = f"{NODE_REPO}:{v.kubernetes}-{node_key(base, v, bins)}"
    if kindbase.image_exists(docker, tag):
        notes.append(f"node image {tag} already built")
        return tag
    rootfs = kindbase.debootstrap("node-rootfs", kindbase.NODE_PACKAGES)
    rootfs_tar = kindbase.tar_rootfs(rootfs, rootfs.with_suffix(".tar"))
    name = f"cth-kind-build-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="cth-kind-node-", dir=kindbase.work_dir()) as td:
        tmp = Path(td)
        script = tmp / "cth-static-cni"
        script.write_text(kindimages.STATIC_CNI_SH)
        docker.cli(
            "run",
            "-d",
            "--init",  # reaps the containerd started below once it is stopped
            "--name",
            name,
            "--entrypoint=sleep",
            "--security-opt",
            "seccomp=unconfined",
            base,
            "infinity",
        )
        try:
            for b in NODE_BINARIES:
                docker.cli("cp", str(bins[b]), f"{name}:/usr/bin/{b}")
                _exec(docker, name, "chmod", "0755", f"/usr/bin/{b}")
            _write(docker, name, "/kind/version", v.kubernetes, tmp)
            listed = _exec(
                docker,
                name,
                "kubeadm",
                "config",
                "images",
                "list",
                "--kubernetes-version",
                v.kubernetes,
            ).split()
            missing = kindimages.missing_from_kubeadm(listed, v)
            if missing:
                raise BackendError(f"kubeadm names images this build does not make: {missing}")
            _exec(docker, name, "mkdir", "-p", "/kind/manifests", "/kind/images")
            _write(
                docker,
                name,
                "/kind/manifests/default-cni.yaml",
                kindimages.static_cni_manifest(v),
                tmp,
            )
            _write(
                docker,
                name,
                "/kind/manifests/default-storage.yaml",
                kindimages.STORAGE_MANIFEST,
                tmp,
            )
            t1 = time.monotonic()
            archives = []
            for i, spec in enumerate(kindimages.specs(v, bins, rootfs_tar, script)):
                out = tmp / f"image-{i}.tar"
                write_archive(spec, out)
                docker.cli("cp", str(out), f"{name}:/kind/images/{out.name}", timeout_s=600)
                out.unlink()
                archives.append(out.name)
            notes.append(
                f"{len(archives)} image archives written and copied ({time.monotonic() - t1:.0f} s)"
            )
            pid = _exec(
                docker, name, "sh", "-c", "containerd >/tmp/containerd.log 2>&1 & echo $!"
            ).strip()
            _exec(
                docker,
                name,
                "sh",
                "-c",
                WAIT_CONTAINERD,
            )
            for a in archives:
                _exec(
                    docker,
                    name,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    "--all-platforms",
                    "--no-unpack",
                    "--digests",
                    f"/kind/images/{a}",
                    timeout_s=900,
                )
            imported = _exec(
                docker, name, "ctr", "--namespace=k8s.io", "images", "list", "-q"
            ).split()
            absent = [
                n
                for n in kindimages.image_names(v).values()
                if n not in imported and f"docker.io/{n}" not in imported
            ]
            if absent:
                raise BackendError(f"images missing after ctr import: {absent} (have {imported})")
            for n in imported:  # kubelet's image GC must never drop these
                _exec(
                    docker,
                    name,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "label",
                    n,
                    "io.cri-containerd.pinned=pinned",
                )
            _exec(
                docker,
                name,
                "sh",
                "-c",
                f"kill {pid}; for i in $(seq 1 100); do kill -0 {pid} 2>/dev/null || exit 0; "
                "sleep 0.1; done; exit 1",
            )
            _exec(docker, name, "rm", "-rf", "/kind/images", "/tmp/containerd.log")
            docker.cli(
                "commit",
                "--change",
                'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]',
                name,
                tag,
                timeout_s=1800,
            )
        finally:
            docker.cli("rm", "-f", "-v", name)
    notes.append(f"node image {tag} built ({time.monotonic() - t0:.0f} s)")
    return tag
