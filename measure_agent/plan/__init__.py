"""Model plans: compile a graph into the firmware's binary plan and run plans on the host build."""

from measure_agent.plan.builder import Layer, LoweringError, Plan, UnsupportedOpError
from measure_agent.plan.compiler import compile_plan

__all__ = ["Layer", "LoweringError", "Plan", "UnsupportedOpError", "compile_plan"]
