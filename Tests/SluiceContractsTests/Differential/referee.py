"""The referee of DifferentialTests.swift: python-jsonschema's draft 2020-12 validator.

Reads the JSONL file named by argv[1], one case per line ({"schema": ..., "instances": [...]}),
and prints one JSON line per case: for each instance, true (valid), false (invalid) or null
(not comparable, by the rule below).

Dialect rules, so that both sides answer the specification's question (see DifferentialTests):
- Numbers are exact: decimals are parsed as decimal.Decimal (not float) with a 2,000-digit
  context, and "integer" is redefined as "an integral value" (JSON Schema's definition; the
  library's own checker only knows int and float).
- Format checking is off (no format_checker), as in Sluice's validator.
- null (not compared) only when Decimal arithmetic itself gives up (decimal.InvalidOperation).
"""

import decimal
import json
import sys
from decimal import Decimal

from jsonschema import Draft202012Validator, validators

decimal.getcontext().prec = 2000
decimal.getcontext().Emax = 999_999
decimal.getcontext().Emin = -999_999


def is_integer(checker, instance):
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return False


Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer),
)


def main():
    with open(sys.argv[1], encoding="utf-8") as cases:
        for line in cases:
            case = json.loads(line, parse_float=Decimal)
            validator = Validator(case["schema"])
            answers = []
            for instance in case["instances"]:
                try:
                    answers.append(validator.is_valid(instance))
                except decimal.InvalidOperation:
                    answers.append(None)
            sys.stdout.write(json.dumps(answers) + "\n")


if __name__ == "__main__":
    main()
