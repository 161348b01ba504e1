from tw_gates.cli import main

raise SystemExit(main())
