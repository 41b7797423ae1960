from distribution.cli import main

raise SystemExit(main())
