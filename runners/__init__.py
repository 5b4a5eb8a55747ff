"""Runner presets: sensible Beam flags for each runner this project supports.

Beam's own flags stay Beam's; these helpers only fill in what a user left
unsaid. ``direct`` covers the local DirectRunner.
"""
