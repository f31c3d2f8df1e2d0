from coldchain.cli import main

raise SystemExit(main())
