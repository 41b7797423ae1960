from distribution.entry import main

raise SystemExit(main())
