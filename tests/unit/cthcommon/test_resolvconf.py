from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf, search_candidates

K8S = ResolvConf.parse(
    "nameserver 10.96.0.10\n"
    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
    "options ndots:5\n"
)


def test_parse_kubelet_file() -> None:
    assert K8S.nameservers == ("10.96.0.10",)
    assert K8S.search == ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert (K8S.ndots, K8S.timeout, K8S.attempts) == (5, 5, 2)


def test_options_flags_unknown_and_clamping() -> None:
    c = ResolvConf.parse(
        "nameserver 1.1.1.1\noptions timeout:99 attempts:9 ndots:40 single-request-reopen "
        "use-vc edns0 rotate frobnicate:3\n"
    )
    assert (c.timeout, c.attempts, c.ndots) == (30, 5, 15)  # glibc clamps to its maxima
    assert c.single_request_reopen
    assert c.use_vc
    assert c.rotate
    assert "edns0" in c.flags
    assert not c.single_request
    assert c.unknown_options == ("frobnicate:3",)


def test_last_search_line_wins_and_comments_ignored() -> None:
    c = ResolvConf.parse("search a.b\n# comment\ndomain c.d ; trailing\nnameserver 10.0.0.1\n")
    assert c.search == ("c.d",)


def test_at_most_three_nameservers_like_glibc() -> None:
    text = "".join(f"nameserver 10.0.0.{i}\n" for i in range(1, 6))
    assert ResolvConf.parse(text).nameservers == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    with pytest.raises(BadInput):
        ResolvConf.parse(text, strict=True)


def test_render_round_trips() -> None:
    c = ResolvConf.build(
        ["10.96.0.10"],
        ["default.svc.cluster.local"],
        {"ndots": "2", "timeout": "1", "single-request-reopen": None},
    )
    assert ResolvConf.parse(c.render()) == c
    assert "options ndots:2 timeout:1 single-request-reopen" in c.render()


@pytest.mark.parametrize(
    ("options", "field"),
    [({"ndots": "x"}, "options.ndots"), ({"timeout": "0"}, "options.timeout")],
)
def test_strict_build_names_the_bad_field(options: dict[str, str | None], field: str) -> None:
    with pytest.raises(BadInput) as e:
        ResolvConf.build(["10.96.0.10"], [], options)
    assert e.value.field == field


def test_bad_nameserver_rejected_in_strict_mode_kept_as_ignored_otherwise() -> None:
    with pytest.raises(BadInput):
        ResolvConf.parse("nameserver not-ip\n", strict=True)
    assert ResolvConf.parse("nameserver not-ip\n").ignored_lines == ("not-ip",)


def test_search_short_name_tries_search_list_first() -> None:
    assert search_candidates("my-service.default", K8S) == [
        "my-service.default.default.svc.cluster.local.",
        "my-service.default.svc.cluster.local.",
        "my-service.default.cluster.local.",
        "my-service.default.",
    ]


def test_search_enough_dots_tries_as_is_first() -> None:
    c = K8S.with_options(ndots=2)
    assert search_candidates("api.example.com", c)[0] == "api.example.com."
    assert len(search_candidates("api.example.com", c)) == 4


def test_trailing_dot_is_absolute() -> None:
    assert search_candidates("api.example.com.", K8S) == ["api.example.com."]


def test_no_tld_query_skips_single_label_as_is() -> None:
    c = K8S.with_flag("no-tld-query")
    assert "redis." not in search_candidates("redis", c)
    with pytest.raises(BadInput):
        K8S.with_flag("not-an-option")
