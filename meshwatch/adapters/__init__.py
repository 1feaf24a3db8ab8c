"""The edges of meshwatch: every module that talks to the outside world lives below here."""
