"""What a backend captured for the bug bundle, in one typed layout for every backend.

Kept in memory from the backend to the reports; written under ``<report dir>/evidence/`` so
``conntrack-harness report`` can rebuild the bundle later::

    nodes/<node>/<file>                        per node, at the end of the run
                                               (iptables-save.txt, conntrack-S.txt, ...)
    pods/<pod>/resolv.conf                     per client pod, at the end of the run
    phases/<phase>/pods/<pod>/resolv.conf      per phase and pod: what the phase ran with
    phases/<phase>/nodes/<node>/<file>         per phase and node (conntrack-S.txt), taken
                                               while the phase's remediations held
    pcap/<label>.pcap                          --pcap: a phase's unanswered same-port pairs

Reading it back takes only that layout: anything else under the directory is named in
``unknown`` and left alone, never read as a node's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RESOLV = "resolv.conf"


@dataclass
class Evidence:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> file -> text
    pods: dict[str, str] = field(default_factory=dict)  # pod -> resolv.conf
    phase_pods: dict[str, dict[str, str]] = field(default_factory=dict)  # phase -> pod -> rc
    # phase -> node -> file -> text
    phase_nodes: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    pcaps: dict[str, bytes] = field(default_factory=dict)  # label -> pcap bytes
    unknown: list[str] = field(default_factory=list)  # paths read() did not take

    def files(self) -> dict[str, bytes]:
        """Relative path -> content, in the layout above."""
        out: dict[str, bytes] = {}
        for node, files in self.nodes.items():
            for name, text in files.items():
                out[f"nodes/{node}/{name}"] = text.encode()
        for pod, text in self.pods.items():
            out[f"pods/{pod}/{RESOLV}"] = text.encode()
        for phase, pods in self.phase_pods.items():
            for pod, text in pods.items():
                out[f"phases/{phase}/pods/{pod}/{RESOLV}"] = text.encode()
        for phase, nodes in self.phase_nodes.items():
            for node, files in nodes.items():
                for name, text in files.items():
                    out[f"phases/{phase}/nodes/{node}/{name}"] = text.encode()
        for label, data in self.pcaps.items():
            out[f"pcap/{label}.pcap"] = data
        return out

    def write(self, root: Path) -> list[Path]:
        written = []
        for rel, data in sorted(self.files().items()):
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            written.append(p)
        return written

    @classmethod
    def read(cls, root: Path) -> Evidence:
        """The inverse of :meth:`write` (an absent directory is empty evidence)."""
        ev = cls()
        if not root.is_dir():
            return ev
        for p in sorted(root.rglob("*")):
            if p.is_dir():
                continue
            parts = p.relative_to(root).parts
            if len(parts) == 3 and parts[0] == "nodes":
                ev.nodes.setdefault(parts[1], {})[parts[2]] = p.read_text(errors="replace")
            elif len(parts) == 3 and parts[0] == "pods" and parts[2] == RESOLV:
                ev.pods[parts[1]] = p.read_text(errors="replace")
            elif len(parts) == 5 and parts[0] == "phases" and parts[2] == "nodes":
                text = p.read_text(errors="replace")
                ev.phase_nodes.setdefault(parts[1], {}).setdefault(parts[3], {})[parts[4]] = text
            elif len(parts) == 5 and parts[0] == "phases" and parts[2] == "pods":
                if parts[4] == RESOLV:
                    text = p.read_text(errors="replace")
                    ev.phase_pods.setdefault(parts[1], {})[parts[3]] = text
                else:
                    ev.unknown.append("/".join(parts))
            elif len(parts) == 2 and parts[0] == "pcap" and p.suffix == ".pcap":
                ev.pcaps[p.stem] = p.read_bytes()
            else:
                ev.unknown.append("/".join(parts))
        return ev
