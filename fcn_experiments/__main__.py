from fcn_experiments.cli import main

raise SystemExit(main())
