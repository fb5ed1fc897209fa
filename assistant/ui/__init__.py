"""The agents' web page: :func:`build_ui` (Gradio Blocks) and :func:`launch_ui` (serving)."""

from assistant.ui.app import DocumentFiles, build_app, build_ui, launch_ui

__all__ = ["DocumentFiles", "build_app", "build_ui", "launch_ui"]
