"""The HIL suite (docs/hil.md). A package, so that its conftest and modules never shadow tests/ ones."""
