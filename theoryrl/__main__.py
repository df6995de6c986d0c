from theoryrl.cli import main

raise SystemExit(main())
