"""The studio's tabs, one file each: `build(studio)` lays out the tab's controls and wires its events."""
