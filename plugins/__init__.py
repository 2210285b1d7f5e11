"""The built-in plugins of iqabench, installed as ``iqabench_plugins``.

Each sub-package is one plugin family, registered through the ``iqabench``
entry-point group exactly as a third-party plugin would be.
"""
