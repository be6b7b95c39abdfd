"""Real MTA logs read into mxsim's event schema, to be judged like a run.

``syslog`` (the line header), ``postfix_lines`` (what each Postfix line
says), ``postfix`` (the lines folded into events).
"""
