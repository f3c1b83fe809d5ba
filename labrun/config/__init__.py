"""The config system: scopes, fixed values (patches), resolution of the precedence stack, read-only views."""
