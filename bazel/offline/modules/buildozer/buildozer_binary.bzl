"""A buildozer_binary extension that provides an empty repository."""

def _empty_repo_impl(repository_ctx):
    repository_ctx.file("BUILD.bazel", "# buildozer is not available offline.\n")

_empty_repo = repository_rule(implementation = _empty_repo_impl)

def _buildozer_binary_impl(module_ctx):
    _empty_repo(name = "buildozer_binary")

buildozer_binary = module_extension(implementation = _buildozer_binary_impl)
