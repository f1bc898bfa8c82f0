"""What people ask for, in words: free-text instructions read clause by clause, in English
and Simplified Chinese, into the edit vocabulary (`EditSpec`, export settings).

It belongs to no engine: `config` uses it to check rules, the local engine to plan an edit,
`explain` and `check` to say what was understood. Pure: no files, no processes.
"""

from nemowatch.language.clauses import split_clauses
from nemowatch.language.instructions import (
    Conflict,
    Interpretation,
    Operation,
    find_conflicts,
    interpret,
    interpret_all,
    parse_instruction,
    parse_instructions,
)
from nemowatch.language.timing import describe_silence_cut

__all__ = [
    "Conflict",
    "Interpretation",
    "Operation",
    "describe_silence_cut",
    "find_conflicts",
    "interpret",
    "interpret_all",
    "parse_instruction",
    "parse_instructions",
    "split_clauses",
]
