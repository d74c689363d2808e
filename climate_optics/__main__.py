from climate_optics.cli import main

main()
