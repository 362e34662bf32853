"""kind's base image, built here: a Debian bookworm rootfs with kind's node layout.

kind's own base image clones its parts from git, which no machine here can do, so the base
is made from parts that can be had:

- a bookworm rootfs from ``debootstrap`` (systemd 252, which still runs on cgroup v1, and
  Debian's containerd 1.6 and runc; see :data:`CONTAINERD_NOTE`), fetched from the Debian
  mirror this machine's apt is configured with (:mod:`harness.aptsources`);
- kind's node files, read at build time from kind's module source in the Go module cache
  (``images/base/files``: the entrypoint, the systemd units for containerd and kubelet, the
  kubelet drop-ins, sysctl.d, the containerd config): not copied into this repository;
- the CNI plugins and crictl built by :mod:`harness.upstream.kindparts`.

The result is imported with ``docker import`` as ``conntrack-harness/kind-base:<hash>``,
where the hash covers every input (package list, kind version, binaries, this module's
source), so it is rebuilt only when one of them changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from cthcommon.errors import BackendError, MissingTool
from harness.aptsources import debian_mirror
from harness.kindbuild.dockerd import DockerCli, Dockerd
from harness.upstream import cache_dir, gobuild, kindparts

SUITE = "bookworm"
# kind's base installs these (images/base/Dockerfile), plus containerd and runc from Debian
NODE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "containerd",
    "runc",
    "iptables",
    "iproute2",
    "ethtool",
    "socat",
    "conntrack",
    "ebtables",
    "kmod",
    "libseccomp2",
    "pigz",
    "ca-certificates",
    "mount",
    "util-linux",
    "procps",
    "nftables",
    "jq",  # kind's mount-product-files.sh hook (run for every container) needs it
)
BASE_REPO = "conntrack-harness/kind-base"
# Debian's sysctl.d files that set host-global knobs (kernel.pid_max, fs.protected_*): a
# privileged node's systemd-sysctl would write them into the host kernel. kind's own files
# (net.*, per network namespace) stay.
HOST_GLOBAL_SYSCTL_FILES = (
    "usr/lib/sysctl.d/50-pid-max.conf",
    "usr/lib/sysctl.d/99-protect-links.conf",
)

CONTAINERD_NOTE = (
    "containerd is Debian bookworm's 1.6.20: kubelet 1.35 talks CRI v1, which containerd 1.6 "
    "serves, and 1.35 is the last Kubernetes release that still supports containerd 1.x (1.36 "
    "drops it; building containerd v2 is then needed, with its config format 3)"
)


def work_dir() -> Path:
    d = cache_dir().parent / "kind"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()


def rootfs_key(packages: tuple[str, ...] = NODE_PACKAGES, suite: str = SUITE) -> str:
    return _digest(suite, *sorted(packages))[:12]


def debootstrap(name: str, packages: tuple[str, ...], suite: str = SUITE) -> Path:
    """A pristine minbase rootfs with ``packages`` (cached by suite + package list)."""
    dest = work_dir() / f"{name}-{rootfs_key(packages, suite)}"
    if (dest / ".complete").is_file():
        return dest
    if shutil.which("debootstrap") is None:
        raise MissingTool("debootstrap is missing: apt-get install debootstrap", tool="debootstrap")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    argv = [
        "nice",
        "-n",
        "19",
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        suite,
        str(tmp),
        debian_mirror(suite),  # the mirror this machine's apt is configured with
    ]
    p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackendError(f"debootstrap failed ({p.returncode}): {p.stdout[-1500:]}")
    # what the build host put there for the install only
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        d = tmp / leftover
        for f in d.glob("*"):
            if f.is_file() and f.name != "lock":
                f.unlink()
    (tmp / ".complete").write_text(json.dumps({"suite": suite, "packages": sorted(packages)}))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def tar_rootfs(root: Path, out: Path) -> Path:
    """``root`` as an uncompressed tarball (numeric owners, ``/dev`` and the marker left out)."""
    if out.is_file():
        return out
    tmp = out.with_suffix(".tmp")
    argv = [
        "tar",
        "--numeric-owner",
        "--xattrs",
        "--sort=name",
        "--mtime=@0",
        "--exclude=./.complete",
        "--exclude=./dev/*",
        "-C",
        str(root),
        "-cf",
        str(tmp),
        ".",
    ]
    p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800)
    if p.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BackendError(f"tar of {root} failed: {p.stderr[-800:]}")
    tmp.replace(out)
    return out


def kind_source() -> Path:
    """kind's module directory at the pinned version (``go mod download``)."""
    return gobuild.module_dir(kindparts.KIND_MODULE, kindparts.pinned()["kind"], timeout_s=600)


def containerd_config(kind_config: str, pause_image: str) -> str:
    """kind's containerd config for containerd 1.6: the rootless-only fuse-overlayfs proxy
    plugin dropped, the sandbox image set to the one kubeadm names, oom_score_adj restricted
    to containerd's own (as rootless kind does: no CAP_SYS_RESOURCE here)."""
    out: list[str] = []
    skip = False
    for line in kind_config.splitlines():
        stripped = line.strip()
        if stripped.startswith("restrict_oom_score_adj"):
            # this host grants no CAP_SYS_RESOURCE: runc could not lower a pod's
            # oom_score_adj (kubelet asks -997 for static pods) and pod sandboxes fail
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}restrict_oom_score_adj = true")
            continue
        if stripped.startswith("[proxy_plugins"):
            skip = True
            continue
        if skip and stripped.startswith("[") and not stripped.startswith("[proxy_plugins"):
            skip = False
        if skip:
            continue
        if stripped.startswith("sandbox_image"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}sandbox_image = "{pause_image}"')
        else:
            out.append(line)
    text = "\n".join(out) + "\n"
    if f'sandbox_image = "{pause_image}"' not in text:
        raise BackendError("kind's containerd config has no sandbox_image line to set")
    return text


def cri_base_spec(oci_spec: str) -> str:
    """``ctr oci spec`` as kind's base runtime spec: kind's product-files hook, no rlimits."""
    spec = json.loads(oci_spec)
    hooks = spec.setdefault("hooks", {})
    hooks.setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return json.dumps(spec, indent=2) + "\n"


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def apply_layout(root: Path, kind_src: Path, cni_dir: Path, crictl: Path, pause_image: str) -> None:
    """kind's node layout on a rootfs (what images/base/Dockerfile does, file by file)."""
    files = kind_src / "images/base/files"

    def put(rel: str, mode: int, src: Path | None = None, text: str | None = None) -> None:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src is not None:
            shutil.copyfile(src, dest)
        else:
            dest.write_text(text or "")
        os.chmod(dest, mode)

    for f in sorted((files / "usr/local/bin").iterdir()):
        put(f"usr/local/bin/{f.name}", 0o755, f)
    for f in sorted((files / "kind").rglob("*")):
        if f.is_file():
            rel = f.relative_to(files)
            put(str(rel), 0o755 if rel.parts[1:2] == ("bin",) else 0o644, f)
    for sub in ("etc/sysctl.d", "etc/default", "etc/systemd/system/kubelet.service.d"):
        for f in sorted((files / sub).iterdir()):
            put(f"{sub}/{f.name}", 0o644, f)
    for name in (
        "containerd.service",
        "kubelet.service",
        "kubelet.slice",
        "undo-mount-hacks.service",
    ):
        put(f"etc/systemd/system/{name}", 0o644, files / "etc/systemd/system" / name)
    put("etc/crictl.yaml", 0o644, files / "etc/crictl.yaml")
    config = (files / "etc/containerd/config.toml").read_text()
    put("etc/containerd/config.toml", 0o644, text=containerd_config(config, pause_image))
    oci = subprocess.run(
        ["chroot", str(root), "ctr", "oci", "spec"], capture_output=True, text=True, check=False
    )
    if oci.returncode != 0:
        raise BackendError(f"ctr oci spec in the rootfs failed: {oci.stderr}")
    put("etc/containerd/cri-base.json", 0o644, text=cri_base_spec(oci.stdout))
    # kind's units name /usr/local/bin/containerd; Debian installs /usr/bin/containerd
    _link(root / "usr/local/bin/containerd", "/usr/bin/containerd")
    put("usr/local/bin/crictl", 0o755, crictl)
    for name in kindparts.CNI_PLUGINS:
        put(f"opt/cni/bin/{name}", 0o755, cni_dir / name)
    # the service clean-up of kind's Dockerfile, then its enables and masks
    (root / "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service").unlink(
        missing_ok=True
    )
    for pattern in (
        "lib/systemd/system/multi-user.target.wants/*",
        "etc/systemd/system/*.wants/*",
        "lib/systemd/system/local-fs.target.wants/*",
        "lib/systemd/system/sockets.target.wants/*udev*",
        "lib/systemd/system/sockets.target.wants/*initctl*",
        "lib/systemd/system/basic.target.wants/*",
    ):
        for f in root.glob(pattern):
            f.unlink()
    with (root / "etc/systemd/journald.conf").open("a") as conf:
        conf.write("ReadKMsg=no\n")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    for unit in ("kubelet.service", "containerd.service", "undo-mount-hacks.service"):
        _link(wants / unit, f"/etc/systemd/system/{unit}")
    _link(root / "etc/systemd/system/systemd-binfmt.service", "/dev/null")
    _link(root / "sbin/init", "/usr/lib/systemd/systemd")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    # (docker 20.10's import takes no STOPSIGNAL; kind removes its nodes with `rm -f` anyway)
    for name in ("etc/hostname", "etc/resolv.conf", *HOST_GLOBAL_SYSCTL_FILES):
        (root / name).unlink(missing_ok=True)


def base_inputs_key(rootfs: Path, kind_src: Path, cni_dir: Path, crictl: Path, pause: str) -> str:
    parts: list[str | bytes] = [
        (rootfs / ".complete").read_text(),
        str(kind_src.name),
        (cni_dir / ".complete").read_text(),
        hashlib.sha256(crictl.read_bytes()).hexdigest(),
        pause,
        Path(__file__).read_bytes(),
    ]
    for f in sorted((kind_src / "images/base/files").rglob("*")):
        if f.is_file():
            parts += [str(f.relative_to(kind_src)), f.read_bytes()]
    return _digest(*parts)[:12]


def image_exists(docker: DockerCli, tag: str) -> bool:
    try:
        docker.cli("image", "inspect", "--format", "{{.Id}}", tag)
    except BackendError:
        return False
    return True


def build_base(docker: Dockerd, crictl: Path, pause_image: str) -> str:
    """The base image's tag (built and imported if this Docker does not have it yet)."""
    rootfs = debootstrap("node-rootfs", NODE_PACKAGES)
    kind_src = kind_source()
    cni_dir = kindparts.build("cni-plugins")
    tag = f"{BASE_REPO}:{base_inputs_key(rootfs, kind_src, cni_dir, crictl, pause_image)}"
    if image_exists(docker, tag):
        return tag
    staging = work_dir() / "base-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        p = subprocess.run(
            ["cp", "-a", str(rootfs), str(staging)], capture_output=True, text=True, check=False
        )
        if p.returncode != 0:
            raise BackendError(f"copying the rootfs failed: {p.stderr}")
        apply_layout(staging, kind_src, cni_dir, crictl, pause_image)
        tarball = work_dir() / "base.tar"
        tarball.unlink(missing_ok=True)
        tar_rootfs(staging, tarball)
        docker.cli(
            "import",
            "--change",
            "ENV container=docker",
            "--change",
            'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
            str(tarball),
            tag,
            timeout_s=1800,
        )
        tarball.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tag
