"""One set of flags and wrappers for every C target in the project."""

GP_COPTS = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wvla",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-fno-common",
]

def gp_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = GP_COPTS + copts, **kwargs)

def gp_cc_binary(name, copts = [], linkopts = [], **kwargs):
    native.cc_binary(name = name, copts = GP_COPTS + copts, linkopts = ["-pthread"] + linkopts, **kwargs)

def gp_cc_test(name, copts = [], linkopts = [], size = "small", **kwargs):
    """A C test binary; it exits non-zero on any failed check."""
    native.cc_test(
        name = name,
        copts = GP_COPTS + copts,
        linkopts = ["-pthread"] + linkopts,
        size = size,
        **kwargs
    )

def gp_fuzz_target(name, srcs, deps = [], corpus = None, **kwargs):
    """A libFuzzer target.

    Under --config=fuzz (clang, -fsanitize=fuzzer) it is a real fuzzer. In the
    normal build it links transport/testing/fuzz_main.c instead, which replays
    the seed corpus, so every build checks that the corpus still passes.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = GP_COPTS,
        deps = deps + select({
            "//bazel:fuzzing": [],
            "//conditions:default": ["//transport/testing:fuzz_main"],
        }),
        linkopts = ["-pthread"],
        **kwargs
    )
    if corpus:
        native.sh_test(
            name = name + "_corpus_test",
            srcs = ["//transport/testing:run_corpus.sh"],
            args = ["$(location :%s)" % name, "$(locations %s)" % corpus],
            data = [":" + name, corpus],
            size = "small",
        )
