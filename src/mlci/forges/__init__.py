"""Where reports are published: forges behind one Protocol (`base.Forge`)."""
