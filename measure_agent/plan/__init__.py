"""Model plans: compile a graph into the firmware's binary plan and run plans on the host build."""

from measure_agent.plan.compiler import Plan, UnsupportedOpError, compile_plan

__all__ = ["Plan", "UnsupportedOpError", "compile_plan"]
