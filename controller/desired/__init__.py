"""The desired state: environment files in, values out. Schema, YAML reading with one error
boundary (every problem a `file:line` diagnostic), cross-file checks, minimal edits that keep
comments, the edit a promotion makes, and the one reader of an environment file's git
history. Rule: pure (text in, values out); may import only `core`."""
