from mlci.cli import main

raise SystemExit(main())
