"""Tests that need go-plugin 1.8 peers (see bazel/go_plugin_18.bzl)."""

_STATE = "@go_plugin_18//:state"

def go18_sh_test(name, script, args = [], data = [], tags = [], **kwargs):
    """An sh_test running `script` with `args`, or reporting itself skipped.

    When @go_plugin_18 found no go-plugin 1.8 sources, run_or_skip.sh prints
    "GP_TEST_SKIPPED: ..." and exits 0 (scripts/test.sh counts that as a
    skip). Tagged "interop" and "go_plugin_18".
    """
    native.sh_test(
        name = name,
        srcs = ["//interop-tests/go18:run_or_skip.sh"],
        args = ["$(rootpath %s)" % _STATE, "$(rootpath %s)" % script] + args,
        data = data + [script, _STATE],
        tags = tags + ["interop", "go_plugin_18"],
        **kwargs
    )

def go_sh_test(name, script, args = [], data = [], tags = [], **kwargs):
    """go18_sh_test's signature for cells without a 1.8 peer: never skipped."""
    native.sh_test(
        name = name,
        srcs = [script],
        args = args,
        data = data,
        tags = tags + ["interop"],
        **kwargs
    )
