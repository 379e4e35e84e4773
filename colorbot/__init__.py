"""colorbot: the console command and the settings every part shares."""
