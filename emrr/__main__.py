from emrr.cli import main

raise SystemExit(main())
