from flextape_bench.cli import main

raise SystemExit(main())
