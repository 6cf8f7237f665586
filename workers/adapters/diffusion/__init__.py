"""The ``diffusers`` adapter: real diffusion pipelines (settings, pipeline loading, images).

It imports the adapter base class and the shared vocabulary; never ``api``.
"""
