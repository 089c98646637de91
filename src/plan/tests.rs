// planner rule tests are below
