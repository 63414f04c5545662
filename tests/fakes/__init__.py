"""Working stand-ins for programs a test machine lacks (see STYLE.md: fakes, not mocks)."""
