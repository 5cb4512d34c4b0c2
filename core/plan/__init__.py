"""Pure planning (STYLE rule 2): the model, recurrence, time zones, Outlook items, and the
inbound and outbound planners. No I/O, no clock, no settings: every input is a value and
every decision is returned as a value. Imports nothing from the other ``core`` layers."""
